// TroupeRL
