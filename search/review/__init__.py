"""Looking at a study: trial and study notes, pictures, text tables and CSV, the HTML report, the dashboard."""
