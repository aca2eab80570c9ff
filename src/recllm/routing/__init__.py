"""Task routing: intent classifier, slots, catalogue matching and constraints for queries in words."""
