"""The fleet: `platepilot collect` gathers the MQTT events of many devices into one database."""
