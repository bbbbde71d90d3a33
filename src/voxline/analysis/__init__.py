"""After the call: summary, extracted data, success and the instance's memory (docs/analysis.md)."""
