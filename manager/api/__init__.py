"""gRPC edge of the manager: request/response mapping and status codes only."""
