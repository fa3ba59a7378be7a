"""Petition signing: e-mail normalisation, verification tokens, proof-of-work, velocity limits, durable intake,
counts, export.  Builds on ``takeback.store`` (petitions, signatures); the web layer calls ``service``."""
