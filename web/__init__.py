"""The HTTP edge, where browsers and apps meet the server: which origins may call it (CORS and
websockets), GraphQL over HTTP's media types and status codes, and the offline GraphiQL page."""
