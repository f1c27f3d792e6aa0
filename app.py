"""Run the chat page and the HTTP API: `python app.py [--host H] [--port P]`.

Host and port default to the HOST / PORT environment variables, else 127.0.0.1:7860.
The same as `assistant serve`.
"""

import sys

from assistant.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
