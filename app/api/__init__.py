"""HTTP edge: app factory, controllers, request/response Structs."""
