// TroupeRuntime
