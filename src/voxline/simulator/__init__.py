"""Simulated far ends of a call (the Twilio side of a media stream), for tests and benchmarks."""
