/// How the lines of a JSONL data file are shaped.
public enum DataFormat: String, Sendable, CaseIterable, Equatable {
    /// Decide per line: `messages`, else `prompt`/`completion`, else `text`.
    case auto
    /// `{"text": ...}`: all of it is trained on.
    case text
    /// `{"prompt": ..., "completion": ...}`: only the completion is trained on.
    case promptCompletion = "prompt_completion"
    /// `{"messages": [{"role": ..., "content": ...}]}`: only assistant turns are trained on.
    case messages
}
