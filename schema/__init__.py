"""The GraphQL surface: types, inputs, payloads and the Schema. No business rule lives here."""
