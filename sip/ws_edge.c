/* placeholder */ typedef int placeholder_ws_edge;
