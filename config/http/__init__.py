"""The request path: middleware (request ids, health, chunked bodies, credentialed API requests
skipping session/auth/messages, unknown query parameters), the one exception handler rendering
problem details, DRF's strict parser, negotiation and pagination, OpenAPI hooks, request logging,
static files and the `/metrics` endpoint. Imports no app."""
