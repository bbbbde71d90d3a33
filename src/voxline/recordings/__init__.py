"""Call recordings: one stereo Ogg/Opus file per call (caller left, agent right), written
while the call runs, stored on disk or in an S3-compatible bucket, and served with ranges."""
