// TroupeProto
