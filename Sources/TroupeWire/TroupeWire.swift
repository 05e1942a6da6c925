// TroupeWire
