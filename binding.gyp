{
  "targets": [
    {
      "target_name": "lodge_posix",
      "sources": ["native/addon/lodge_posix.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-Wall", "-Wextra"]
    },
    {
      "target_name": "lodge_worker",
      "sources": ["native/addon/lodge_worker.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-Wall", "-Wextra"]
    },
    {
      "target_name": "lodge-spawn",
      "type": "executable",
      "sources": ["native/spawn/lodge_spawn.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
