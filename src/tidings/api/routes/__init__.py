"""One router per concern; see tidings.api."""
