import ArgumentParser
import Foundation

/// The one way commands report a user error (a bad file, a checkpoint without the asked-for
/// section): a single line `error: <message>` on standard error and exit status 2.
/// Usage mistakes stay with ArgumentParser (its own message and status 64).
enum CommandFailure {
    /// Exit status of a user error.
    static let status: Int32 = 2

    /// Prints `message` as one `error:` line and returns the exit code to throw.
    static func report(_ message: String) -> ExitCode {
        // Keep it one line even when a library message quotes multi-line input.
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
        return ExitCode(status)
    }

    /// Runs `body`; any error it throws is reported with `report` (its description, which
    /// for SafeTune's typed errors names the file and key at fault) and exits with status 2.
    static func guarding<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let exit as ExitCode {
            throw exit
        } catch let error as CustomStringConvertible {
            throw report(error.description)
        } catch {
            throw report("\(error)")
        }
    }
}
