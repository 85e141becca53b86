"""`nestctl watch`: raise and resolve alerts about every layer, and deliver them through Apprise.

snapshot.py (facts per poll) -> rules.py (active conditions, pure) -> engine.py (hold-down,
resolve, flap damping, reminders; state) -> delivery.py (routes, quiet hours, rate limit, digest)
-> messages.py (short text) -> apprise. collect.py gathers snapshots through the API engine that
`doctor --api` uses; service.py runs it all on a clock the tests inject.
"""
