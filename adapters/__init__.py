"""Everything that talks to the outside world: the database, crypto, processors, the broker."""
