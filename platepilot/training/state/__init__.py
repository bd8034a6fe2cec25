"""Training the state classifier: data (real photos, design images, rendered plates), model, export."""
