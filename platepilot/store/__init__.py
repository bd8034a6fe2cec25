"""What the runtime and the labeler keep on disk: crops, the events database, labels.txt."""
