-- An endpoint may ask for each attempt's W3C trace context (traceparent) when tidings traces.
ALTER TABLE endpoints ADD COLUMN trace_context INTEGER NOT NULL DEFAULT 0;
