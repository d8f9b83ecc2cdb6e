package dev.goldfinch.cli;

import picocli.CommandLine.Option;

/** The running gateway a benchmark talks to, and its key: one definition for every command that needs them. */
final class GatewayTarget {
    @Option(
            names = "--url",
            defaultValue = "http://127.0.0.1:8080",
            description = "The gateway (default: ${DEFAULT-VALUE}).")
    String url;

    @Option(
            names = "--api-key",
            defaultValue = "${env:GOLDFINCH_API_KEY}",
            description = "Sent as 'Authorization: Bearer KEY' to a gateway that requires keys"
                    + " (default: the GOLDFINCH_API_KEY environment variable, which keeps it off the command line).")
    String apiKey;
}
