"""The library behind the four stages in stages/, grouped by job: core, data, training, evaluation, runtime."""
