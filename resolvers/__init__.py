"""The operations: one function per GraphQL query field, mutation or subscription (assembled
into the Schema by `root.py`), and the plain HTTP endpoints (`webhooks.py`, `exports.py`).
Each authorises, opens a transaction and calls the domain; nested fields load through the
per-request loaders of `schema.loaders`."""
