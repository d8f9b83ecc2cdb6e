package dev.goldfinch.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import io.grpc.MethodDescriptor.MethodType;
import org.junit.jupiter.api.Test;

/** Properties of the contracts that the services rely on. */
class ContractsTest {
    @Test
    void invalidUtf8InUserTextParsesSoTheServerCanRejectIt() throws Exception {
        byte[] invalid = {(byte) 0xc3, 0x28, (byte) 0xff};
        byte[] wire = GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFrom(invalid))
                .build()
                .toByteArray();
        GenerateRequest parsed = GenerateRequest.parseFrom(wire);
        assertArrayEquals(invalid, parsed.getPromptUtf8().toByteArray());
    }

    @Test
    void unsetSamplingFieldsAreDistinguishableFromZero() throws Exception {
        SamplingParams p = SamplingParams.parseFrom(
                SamplingParams.newBuilder().setTemperature(0).build().toByteArray());
        assertEquals(0.0, p.getTemperature());
        assertEquals(true, p.hasTemperature());
        assertFalse(p.hasTopP());
    }

    @Test
    void streamingShapes() {
        assertEquals(
                MethodType.SERVER_STREAMING, GenerationGrpc.getGenerateMethod().getType());
        assertEquals(MethodType.UNARY, GenerationGrpc.getTokenizeMethod().getType());
        assertEquals(MethodType.UNARY, PrefillGrpc.getPrefillMethod().getType());
        assertEquals(MethodType.SERVER_STREAMING, DecodeGrpc.getDecodeMethod().getType());
        assertEquals(MethodType.CLIENT_STREAMING, CacheStoreGrpc.getPutMethod().getType());
        assertEquals(MethodType.SERVER_STREAMING, CacheStoreGrpc.getGetMethod().getType());
        assertEquals(
                MethodType.SERVER_STREAMING, CacheStoreGrpc.getGetManyMethod().getType());
        assertEquals(
                "goldfinch.internal.v1.CacheStore/Lookup",
                CacheStoreGrpc.getLookupMethod().getFullMethodName());
    }
}
