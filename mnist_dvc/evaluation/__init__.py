"""What evaluate reports: the scores and the study's pictures."""
