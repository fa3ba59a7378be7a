"""The petition's public pages: server-rendered templates (escaped), a little JavaScript, a stylesheet."""
