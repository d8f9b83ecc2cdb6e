package dev.goldfinch.mesh;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.LoggerFactory;

/**
 * Every log line of the JVM (all of a mesh's services) from now until closed, each with the log context it was
 * written in. Start it after the mesh: Boot sets the logging system up as the first service starts.
 */
final class LogCapture implements AutoCloseable {
    /** One log line, with its log context (MDC). */
    record Line(String logger, String message, Map<String, String> context) {}

    /** The classes that log a line per request, by service name. */
    static final Map<String, String> REQUEST_LOGGERS = Map.of(
            "goldfinch-gateway", "dev.goldfinch.gateway.GenerationPipeline",
            "goldfinch-prefill", "dev.goldfinch.prefill.PrefillGrpcService",
            "goldfinch-cache-store", "dev.goldfinch.cache.grpc.CacheStoreGrpcService",
            "goldfinch-decode", "dev.goldfinch.decode.DecodeGrpcService");

    private final List<Line> lines = new CopyOnWriteArrayList<>();
    private final AppenderBase<ILoggingEvent> appender = new AppenderBase<>() {
        @Override
        protected void append(ILoggingEvent e) {
            // The MDC is read now, on the logging thread: later it would be another request's.
            lines.add(new Line(e.getLoggerName(), e.getFormattedMessage(), Map.copyOf(e.getMDCPropertyMap())));
        }
    };

    LogCapture() {
        appender.setContext((LoggerContext) LoggerFactory.getILoggerFactory());
        appender.start();
        root().addAppender(appender);
    }

    /** Mesh properties that make each service log its line per request. */
    static void logRequests(Map<String, String> properties) {
        REQUEST_LOGGERS.values().forEach(logger -> properties.put("logging.level." + logger, "DEBUG"));
    }

    /** The first line of {@code logger} written with {@code requestId} in its log context (waits for it). */
    Line await(String logger, String requestId) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            for (Line line : lines) {
                if (line.logger().equals(logger)
                        && requestId.equals(line.context().get("request_id"))) {
                    return line;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no line of " + logger + " with request_id " + requestId + "; its lines: "
                        + lines.stream().filter(l -> l.logger().equals(logger)).toList());
            }
            Thread.sleep(50);
        }
    }

    @Override
    public void close() {
        root().detachAppender(appender);
        appender.stop();
    }

    private static Logger root() {
        return (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    }
}
