import ArgumentParser
import TroupeModel
import TroupeRuntime
import TroupeTasks

// The closed choices options take, parsed (and listed in help and errors) by ArgumentParser.

extension TaskSplit: ExpressibleByArgument {}
extension TaskFile.BadLinePolicy: ExpressibleByArgument {}
extension LearningRateSchedule.Decay: ExpressibleByArgument {}
extension ProbeRequirement: ExpressibleByArgument {}
