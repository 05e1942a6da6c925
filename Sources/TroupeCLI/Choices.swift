import ArgumentParser
import TroupeModel
import TroupeRuntime
import TroupeTasks

// The closed choices options take, parsed (and listed in help and errors) by ArgumentParser.

extension TaskSplit: ExpressibleByArgument {}
extension TaskFile.BadLinePolicy: ExpressibleByArgument {}
extension LearningRateSchedule.Decay: ExpressibleByArgument {}
extension ProbeRequirement: ExpressibleByArgument {}
extension CompletionStyle: ExpressibleByArgument {}

/// `--chat-template`: render prompts with the model directory's chat template when it has one, or not.
package enum ChatTemplateChoice: String, CaseIterable, ExpressibleByArgument {
    case auto
    case asWritten = "none"
}
