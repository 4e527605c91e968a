using Rpoi.Protocol.Encoding;

namespace Rpoi.Protocol.Tests;

/// <summary>The exact canonical-form test a sealed plaintext (m_final, σ) must pass before it is parsed.</summary>
public sealed class CanonicalExactlyTests
{
    [Theory]
    [InlineData("{\"a\":2,\"b\":1}", true)]
    [InlineData("{\"a\":\"\\u0000é\"}", true)]
    [InlineData("{\"b\":1,\"a\":2}", false)]
    [InlineData("{\"a\": 1}", false)]
    [InlineData("{\"a\":1.0}", false)]
    [InlineData("{\"a\":\"\\u00e9\"}", false)]
    [InlineData("{\"a\":1,\"a\":1}", false)]
    [InlineData("{\"a\":1", false)]
    public void Only_the_RFC_8785_bytes_of_a_value_count_as_canonical(string json, bool canonical) =>
        Assert.Equal(canonical, CanonicalJson.IsCanonicalExactly(System.Text.Encoding.UTF8.GetBytes(json)));
}
