"""One function per GraphQL operation: authorise, open a transaction, call the domain, map the
outcome. Nested fields load through the per-request loaders of `resolvers.loaders`."""
