"""HTTP API: FastAPI app, API keys per environment, Solvimon-compatible resources."""
