"""Amazon channel tests: golden pairs, emulator wire format, emulator <-> connector over HTTP, faults."""
