"""The dashboard: server-rendered pages for the person and her advocates (and platform operators) under /app."""
