// TroupeTokenizer
