// TroupeTasks
