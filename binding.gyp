{
  "variables": {
    "bptt_flags": ["<!@(node -p \"require('./native/sources.json').flags.join(' ')\")"],
    "bptt_prebuilt%": 0
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-O2"],
    "cflags_cc!": ["-fno-exceptions", "-O2", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["<@(bptt_flags)", "-fPIC"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "OTHER_CPLUSPLUSFLAGS": ["<@(bptt_flags)"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
  },
  "targets": [
    {
      "target_name": "bptt",
      "sources": ["<!@(node -p \"require('./native/sources.json').portable.join(' ')\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "conditions": [
        ["target_arch=='x64'", {
          "dependencies": ["bptt_avx2", "bptt_avx512"],
          "defines": ["BPTT_X86_KERNELS=1"]
        }],
        # The binary the npm package ships (scripts/prebuild.js sets bptt_prebuilt=1): libstdc++
        # linked in and its symbols hidden, so it runs whatever libstdc++ the user's system has;
        # unused sections dropped and symbols stripped, to keep it small.
        ["OS=='linux' and bptt_prebuilt==1", {
          "ldflags": ["-static-libstdc++", "-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-s"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "bptt_avx2",
          "type": "static_library",
          "sources": ["<!@(node -p \"require('./native/sources.json').avx2.join(' ')\")"],
          "cflags_cc": ["<!@(node -p \"require('./native/sources.json').avx2_flags.join(' ')\")"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<!@(node -p \"require('./native/sources.json').avx2_flags.join(' ')\")"] }
        },
        {
          "target_name": "bptt_avx512",
          "type": "static_library",
          "sources": ["<!@(node -p \"require('./native/sources.json').avx512.join(' ')\")"],
          "cflags_cc": ["<!@(node -p \"require('./native/sources.json').avx512_flags.join(' ')\")"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<!@(node -p \"require('./native/sources.json').avx512_flags.join(' ')\")"] }
        }
      ]
    }]
  ]
}
