"""Ray Serve applications: the FastAPI ingress, GraphQL and WebSocket (built by the HTTP API issue)."""
