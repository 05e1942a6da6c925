// TroupeReport
