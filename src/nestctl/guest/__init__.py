"""The guest layer: what a guest sees, from inside it or through its QEMU guest agent."""
