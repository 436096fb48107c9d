"""Event-bus adapter: the embedded broker, topics, the producer."""
