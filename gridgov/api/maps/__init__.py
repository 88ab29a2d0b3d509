"""The web map pages (folium, served offline): overview, incident heatmap, grid docking."""
