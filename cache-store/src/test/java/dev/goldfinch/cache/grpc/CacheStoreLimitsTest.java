package dev.goldfinch.cache.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.app.CacheStoreApplication;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.PutHeader;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.proto.internal.v1.PutResponse;
import dev.goldfinch.service.Channels;
import dev.goldfinch.service.ErrorTable;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ApplicationListener;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.grpc.server.lifecycle.GrpcServerStartedEvent;

/**
 * The cache store's limits on its real application, over gRPC on Netty (loopback): an inbound message over
 * {@code spring.grpc.server.max-inbound-message-size} is RESOURCE_EXHAUSTED; a Put announcing more than
 * {@code goldfinch.cache.max-value-bytes}, or 2^31 bytes and up, is INVALID_ARGUMENT naming {@code size};
 * and an announced size reserves nothing before its bytes arrive.
 */
class CacheStoreLimitsTest {
    static final int MESSAGE_LIMIT = 1 << 20;
    static final long MAX_VALUE = 4L << 20;

    private static ConfigurableApplicationContext store;
    private static ManagedChannel channel;
    private static volatile int port = -1;

    @BeforeAll
    static void start() {
        store = new SpringApplicationBuilder(CacheStoreApplication.class)
                .profiles("cache-store")
                .listeners((ApplicationListener<GrpcServerStartedEvent>) e -> port = Math.max(port, e.getPort()))
                .run(
                        "--server.port=0",
                        "--server.address=127.0.0.1",
                        "--management.server.port=0",
                        "--spring.grpc.server.port=0",
                        "--spring.grpc.server.address=127.0.0.1:0",
                        "--spring.grpc.server.max-inbound-message-size=" + MESSAGE_LIMIT + "B",
                        "--goldfinch.cache.max-value-bytes=" + MAX_VALUE);
        channel = Channels.open("127.0.0.1:" + port);
    }

    @AfterAll
    static void stop() {
        Channels.close(channel);
        store.close();
    }

    static PutRequest header(long size, byte[] value) {
        CRC32C crc = new CRC32C();
        crc.update(value);
        return PutRequest.newBuilder()
                .setHeader(PutHeader.newBuilder()
                        .setEntry(EntryRef.newBuilder()
                                .setModel("m")
                                .setPrefixHash("00112233445566778899aabbccddeeff")
                                .setLength(64))
                        .setKind(EntryKind.ENTRY_KIND_KEY_BLOCK)
                        .setSize(size)
                        .setCrc32C((int) crc.getValue()))
                .build();
    }

    /** Sends {@code parts} as one Put and returns how it ended. */
    static Status put(List<PutRequest> parts) throws Exception {
        CompletableFuture<Status> done = new CompletableFuture<>();
        StreamObserver<PutRequest> out = CacheStoreGrpc.newStub(channel)
                .withDeadlineAfter(20, TimeUnit.SECONDS)
                .put(new StreamObserver<>() {
                    @Override
                    public void onNext(PutResponse value) {}

                    @Override
                    public void onError(Throwable t) {
                        done.complete(Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(Status.OK);
                    }
                });
        parts.forEach(out::onNext);
        out.onCompleted();
        return done.get(20, TimeUnit.SECONDS);
    }

    @Test
    void aMessageOverTheServersLimitIsResourceExhausted() throws Exception {
        byte[] value = new byte[MESSAGE_LIMIT + 1];
        Status s = put(List.of(
                header(value.length, value),
                PutRequest.newBuilder().setChunk(ByteString.copyFrom(value)).build()));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, s.getCode(), s.toString());
    }

    @Test
    void announcedSizesOverTheLimitOrFrom2To31AreRefusedNamingSize() throws Exception {
        byte[] none = new byte[0];
        for (long size : new long[] {MAX_VALUE + 1, 1L << 31, (1L << 32) + 1, -1L /* 2^64 - 1 */}) {
            Status s = put(List.of(header(size, none)));
            assertEquals(Status.Code.INVALID_ARGUMENT, s.getCode(), Long.toUnsignedString(size) + ": " + s);
            assertTrue(s.getDescription().contains("exceeds"), s.getDescription());
        }
        byte[] value = new byte[1000];
        Status ok = put(List.of(
                header(value.length, value),
                PutRequest.newBuilder().setChunk(ByteString.copyFrom(value)).build()));
        assertEquals(Status.Code.OK, ok.getCode(), "a Put within the limits is stored: " + ok);
    }

    /**
     * A Get whose reader pauses is held back by gRPC flow control: the store hands gRPC only the chunks the
     * reader can take (not the whole value into the transport's buffers), and the value still arrives whole.
     */
    @Test
    void aSlowGetReaderHoldsBackTheChunksSent() throws Exception {
        byte[] value = new byte[3 << 20];
        new java.util.Random(7).nextBytes(value);
        int part = dev.goldfinch.cache.PrefixCacheStore.WIRE_CHUNK_BYTES;
        java.util.List<PutRequest> parts = new java.util.ArrayList<>();
        parts.add(header(value.length, value));
        for (int at = 0; at < value.length; at += part) {
            parts.add(PutRequest.newBuilder()
                    .setChunk(ByteString.copyFrom(value, at, Math.min(part, value.length - at)))
                    .build());
        }
        assertEquals(Status.Code.OK, put(parts).getCode());
        int chunks = value.length / dev.goldfinch.cache.PrefixCacheStore.WIRE_CHUNK_BYTES;
        CacheStoreGrpcService service = store.getBean(CacheStoreGrpcService.class);
        ManagedChannel small = io.grpc.netty.NettyChannelBuilder.forAddress("127.0.0.1", port)
                .usePlaintext()
                .flowControlWindow(65535)
                .build();
        try {
            java.util.List<ByteString> got = new java.util.concurrent.CopyOnWriteArrayList<>();
            CompletableFuture<Status> end = new CompletableFuture<>();
            var call = new java.util.concurrent.atomic.AtomicReference<
                    io.grpc.stub.ClientCallStreamObserver<dev.goldfinch.proto.internal.v1.GetRequest>>();
            long before = service.chunksSent();
            CacheStoreGrpc.newStub(small)
                    .withDeadlineAfter(60, TimeUnit.SECONDS)
                    .get(
                            dev.goldfinch.proto.internal.v1.GetRequest.newBuilder()
                                    .setEntry(header(0, new byte[0]).getHeader().getEntry())
                                    .setKind(EntryKind.ENTRY_KIND_KEY_BLOCK)
                                    .build(),
                            new io.grpc.stub.ClientResponseObserver<
                                    dev.goldfinch.proto.internal.v1.GetRequest,
                                    dev.goldfinch.proto.internal.v1.GetResponse>() {
                                @Override
                                public void beforeStart(
                                        io.grpc.stub.ClientCallStreamObserver<
                                                        dev.goldfinch.proto.internal.v1.GetRequest>
                                                r) {
                                    call.set(r);
                                    r.disableAutoInboundFlowControl(); // one chunk asked for at the start
                                }

                                @Override
                                public void onNext(dev.goldfinch.proto.internal.v1.GetResponse r) {
                                    got.add(r.getChunk());
                                }

                                @Override
                                public void onError(Throwable t) {
                                    end.complete(Status.fromThrowable(t));
                                }

                                @Override
                                public void onCompleted() {
                                    end.complete(Status.OK);
                                }
                            });
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (got.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(1, got.size(), "the first chunk");
            long sent = -1;
            long now = service.chunksSent() - before;
            while (now != sent && System.nanoTime() < deadline) { // until the store stops sending
                sent = now;
                Thread.sleep(500);
                now = service.chunksSent() - before;
            }
            System.out.printf(
                    "RELIABILITY slow Get reader: %d of %d chunks handed to gRPC after 1 read%n", now, chunks);
            assertTrue(now <= 3, "held back by the reader: " + now + " of " + chunks + " chunks sent");
            call.get().request(Integer.MAX_VALUE);
            assertEquals(Status.Code.OK, end.get(60, TimeUnit.SECONDS).getCode());
            byte[] whole = ByteString.copyFrom(got).toByteArray();
            assertTrue(java.util.Arrays.equals(value, whole), "the value arrives whole");
        } finally {
            small.shutdownNow();
        }
    }

    /** On the service itself, on this thread: a header announcing the limit reserves nothing. */
    @Test
    void anAnnouncedSizeReservesNothingBeforeItsBytesArrive() {
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        CacheStoreGrpcService service = store.getBean(CacheStoreGrpcService.class);
        CompletableFuture<Throwable> failed = new CompletableFuture<>();
        StreamObserver<PutRequest> in = service.put(new StreamObserver<>() {
            @Override
            public void onNext(PutResponse value) {}

            @Override
            public void onError(Throwable t) {
                failed.complete(t);
            }

            @Override
            public void onCompleted() {}
        });
        long before = threads.getCurrentThreadAllocatedBytes();
        in.onNext(header(MAX_VALUE, new byte[0]));
        in.onNext(PutRequest.newBuilder()
                .setChunk(ByteString.copyFrom(new byte[1024]))
                .build());
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < MAX_VALUE / 4, "announcing " + MAX_VALUE + " bytes allocated " + allocated);
        assertTrue(!failed.isDone(), "the header was accepted");
        in.onError(Status.CANCELLED.asRuntimeException());
    }

    @Test
    void theSizeErrorNamesItsField() throws Exception {
        CompletableFuture<Throwable> failed = new CompletableFuture<>();
        StreamObserver<PutRequest> out = CacheStoreGrpc.newStub(channel).put(new StreamObserver<>() {
            @Override
            public void onNext(PutResponse value) {}

            @Override
            public void onError(Throwable t) {
                failed.complete(t);
            }

            @Override
            public void onCompleted() {
                failed.complete(null);
            }
        });
        out.onNext(header(1L << 31, new byte[0]));
        out.onCompleted();
        Throwable t = failed.get(20, TimeUnit.SECONDS);
        assertEquals("size", Status.trailersFromThrowable(t).get(ErrorTable.PARAM));
    }
}
