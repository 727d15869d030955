"""The study: notebook parameters, the plan of runs each table needs, its runner, the Tables
I-IV assembly and the exported reports."""
