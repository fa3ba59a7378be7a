"""Dashboard sign-in: password hashing (argon2id), TOTP second factor, session tokens.  Pure: no web, no database."""
