"""The course website builder (`make site`)."""
