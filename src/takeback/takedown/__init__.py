"""Takedown: who can remove a finding (parties), the legally complete notice to send them (notices, templates),
sending and tracking to removal (service), and the hash-chained evidence record (store.evidence).

Lower layers only: this package uses the store, the discover fetcher and takeback.mail; web, CLI and jobs call it.
"""
