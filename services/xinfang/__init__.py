"""xinfang: an event-driven petition (信访) case-work platform for many districts."""
