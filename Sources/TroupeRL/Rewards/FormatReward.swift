import Foundation

/// Format checks for an optional format reward (added as `reward.format_weight` when the check passes).
///
/// - `think`: the completion starts with one `<think>…</think>` block and has no second `<think>`
///   (TRL's `think_format_reward`, used for DeepSeek-R1-style training);
/// - `boxed`: the completion has a non-empty `\boxed{…}` (EVOL-RL's validity rule also wants a digit
///   in it; that is the caller's choice of extractor);
/// - `think_boxed`: both, with the box after `</think>`.
public enum FormatRequirement: String, OptionEnum {
    case none
    case think
    case boxed
    case thinkBoxed = "think_boxed"
}

public enum FormatReward {
    public static func check(_ text: String, requirement: FormatRequirement) -> Bool {
        switch requirement {
        case .none: return true
        case .think: return thinkBlockEnd(text) != nil
        case .boxed: return AnswerExtractor.boxedContent(text) != nil
        case .thinkBoxed:
            guard let end = thinkBlockEnd(text) else { return false }
            return AnswerExtractor.boxedContent(String(text[end...])) != nil
        }
    }

    /// Index just after `</think>` when the text is `<think>…</think>…` with exactly one `<think>`.
    private static func thinkBlockEnd(_ text: String) -> String.Index? {
        let body = text.drop(while: { $0.isWhitespace })
        guard body.hasPrefix("<think>") else { return nil }
        let afterOpen = body.dropFirst("<think>".count)
        guard afterOpen.range(of: "<think>") == nil, let close = afterOpen.range(of: "</think>") else { return nil }
        return close.upperBound
    }
}
